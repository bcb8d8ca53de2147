  SnapshotSolverState(model_filename);
  medft_reseed(param_, iter_);
}
