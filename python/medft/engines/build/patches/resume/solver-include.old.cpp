#include "caffe/solver.hpp"
