    reader_(param) {
}