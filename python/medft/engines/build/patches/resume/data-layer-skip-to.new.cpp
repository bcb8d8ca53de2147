// medft: the number of records of a Data layer's source (an LMDB's entry count, else counted).
static long medft_source_size(const DataParameter& p) {
#ifdef USE_LMDB
  if (p.backend() == DataParameter_DB_LMDB) {
    MDB_env* env;
    MDB_stat stat;
    CHECK_EQ(mdb_env_create(&env), MDB_SUCCESS);
    CHECK_EQ(mdb_env_open(env, p.source().c_str(), MDB_RDONLY | MDB_NOLOCK, 0664), MDB_SUCCESS)
        << "cannot open " << p.source();
    CHECK_EQ(mdb_env_stat(env, &stat), MDB_SUCCESS);
    mdb_env_close(env);
    return static_cast<long>(stat.ms_entries);
  }
#endif
  shared_ptr<db::DB> db(db::GetDB(p.backend()));
  db->Open(p.source(), db::READ);
  shared_ptr<db::Cursor> cursor(db->NewCursor());
  long n = 0;
  for (cursor->SeekToFirst(); cursor->valid(); cursor->Next()) {
    ++n;
  }
  return n;
}

// medft: after a restore, go on from record (target mod N) of the source, where the run that was not
// stopped would read next: the batches prefetched since set-up count as read, the reader cycles.
template <typename Dtype>
void DataLayer<Dtype>::SkipTo(long target) {
  this->StopInternalThread();
  Batch<Dtype>* batch;
  while (this->prefetch_full_.try_pop(&batch)) {
    this->prefetch_free_.push(batch);
  }
  const long n = medft_source_size(this->layer_param_.data_param());
  CHECK_GT(n, 0) << this->layer_param_.data_param().source() << " holds no records";
  const long skip = ((target - consumed_) % n + n) % n;
  for (long i = 0; i < skip; ++i) {
    reader_.free().push(reader_.full().pop("Data layer: skipping to the resumed record"));
  }
  consumed_ += skip;
  LOG(INFO) << "Data layer " << this->layer_param_.name() << " resumes at record " << target % n
      << " of " << n;
  this->StartInternalThread();
}

INSTANTIATE_CLASS(DataLayer);