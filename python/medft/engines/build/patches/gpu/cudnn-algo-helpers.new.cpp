
// medft: cuDNN 8 removed cudnnGetConvolution{Forward,BackwardFilter,BackwardData}Algorithm and the
// *_SPECIFY_WORKSPACE_LIMIT preferences. The _v7 queries rank every algorithm; take the first that
// succeeds within Caffe's workspace limit (and, with MEDFT_CUDNN_DETERMINISTIC=1, is deterministic).
static bool medft_flag(const char* name) {  // an environment switch: set to 1
  const char* e = getenv(name);
  return e != NULL && e[0] == '1';
}
// medft: Caffe's cuDNN workspace limit, 8 MB per convolution, unless MEDFT_CUDNN_WORKSPACE_MB names another
// (a larger one admits faster algorithms on today's cards).
static size_t medft_cudnn_workspace_limit() {
  const char* e = getenv("MEDFT_CUDNN_WORKSPACE_MB");
  long mb = e != NULL ? atol(e) : 0;
  return (mb > 0 ? static_cast<size_t>(mb) : 8) * 1024 * 1024;
}
// medft: since Ampere, cuDNN's default math lets float convolutions run in TF32 (10-bit mantissa);
// Caffe computed in full FP32, so FMA math unless MEDFT_CUDNN_TF32=1 asks for the faster TF32.
static cudnnMathType_t medft_cudnn_math() {
  return medft_flag("MEDFT_CUDNN_TF32") ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
}
// MEDFT_CUDNN_GEMM_ONLY=1 leaves out the FFT and Winograd algorithms (the ones whose FP32 results
// differ most from Caffe's im2col + GEMM).
static bool medft_is_gemm(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM || a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
      a == CUDNN_CONVOLUTION_FWD_ALGO_GEMM || a == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
}
static bool medft_is_gemm(cudnnConvolutionBwdFilterAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ||
      a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
}
static bool medft_is_gemm(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
}
template <typename Perf>
static int medft_cudnn_pick(const Perf* perf, int n, size_t limit) {
  for (int k = 0; k < n; ++k) {
    if (perf[k].status != CUDNN_STATUS_SUCCESS || perf[k].memory > limit) continue;
    if (medft_flag("MEDFT_CUDNN_DETERMINISTIC") && perf[k].determinism != CUDNN_DETERMINISTIC) continue;
    if (medft_flag("MEDFT_CUDNN_GEMM_ONLY") && !medft_is_gemm(perf[k].algo)) continue;
    return k;
  }
  return -1;
}
static cudnnConvolutionFwdAlgo_t medft_fwd_algo(cudnnHandle_t h, cudnnTensorDescriptor_t x,
    cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t y, size_t limit) {
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int n = 0;
  CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, x, w, c, y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf));
  int k = medft_cudnn_pick(perf, n, limit);
  return k >= 0 ? perf[k].algo : CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;  // no workspace, deterministic
}
static cudnnConvolutionBwdFilterAlgo_t medft_bwd_filter_algo(cudnnHandle_t h, cudnnTensorDescriptor_t x,
    cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t c, cudnnFilterDescriptor_t dw, size_t limit) {
  cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  int n = 0;
  CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, x, dy, c, dw,
      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf));
  int k = medft_cudnn_pick(perf, n, limit);
  return k >= 0 ? perf[k].algo : CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;  // deterministic
}
static cudnnConvolutionBwdDataAlgo_t medft_bwd_data_algo(cudnnHandle_t h, cudnnFilterDescriptor_t w,
    cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t dx, size_t limit) {
  cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  int n = 0;
  CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, w, dy, c, dx,
      CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf));
  int k = medft_cudnn_pick(perf, n, limit);
  return k >= 0 ? perf[k].algo : CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;  // deterministic
}

template <typename Dtype>
void CuDNNConvolutionLayer<Dtype>::LayerSetUp(