#include "caffe/layers/data_layer.hpp"
#include "caffe/solver.hpp"
