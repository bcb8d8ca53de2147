    RestoreSolverStateFromBinaryProto(state_filename);
  }
}
