
template <typename Dtype>
void CuDNNConvolutionLayer<Dtype>::LayerSetUp(