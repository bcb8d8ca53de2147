namespace caffe {

// medft: exact resume. Caffe's random stream (dropout) is reseeded from (random_seed, iteration) at
// every snapshot and on restore, and each Data layer is moved to the record the uninterrupted run
// reads next, so training resumed from a snapshot draws and reads what it would have without the stop.
static void medft_reseed(const SolverParameter& param, int iter) {
  if (param.random_seed() >= 0) {
    Caffe::set_random_seed(static_cast<unsigned int>(param.random_seed())
        + 2654435761u * static_cast<unsigned int>(iter));
  }
}

template <typename Dtype>
static void medft_resume(const shared_ptr<Net<Dtype> >& net, const SolverParameter& param, int iter) {
  for (int i = 0; i < net->layers().size(); ++i) {
    DataLayer<Dtype>* data = dynamic_cast<DataLayer<Dtype>*>(net->layers()[i].get());
    if (data != NULL) {
      data->SkipTo(static_cast<long>(iter) * param.iter_size()
          * data->layer_param().data_param().batch_size());
    }
  }
  medft_reseed(param, iter);
}

template<typename Dtype>
void Solver<Dtype>::SetActionFunction(