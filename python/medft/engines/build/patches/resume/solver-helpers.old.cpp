namespace caffe {

template<typename Dtype>
void Solver<Dtype>::SetActionFunction(