#include "caffe/util/benchmark.hpp"
