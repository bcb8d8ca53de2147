    RestoreSolverStateFromBinaryProto(state_filename);
  }
  medft_resume(net_, param_, iter_);
}
