    reader_(param), consumed_(0) {
}