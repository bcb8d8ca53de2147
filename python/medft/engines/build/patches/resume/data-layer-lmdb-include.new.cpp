#include "caffe/util/benchmark.hpp"
#ifdef USE_LMDB
#include "lmdb.h"
#endif
