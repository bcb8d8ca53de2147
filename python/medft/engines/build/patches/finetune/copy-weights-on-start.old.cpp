    solver->Restore(FLAGS_snapshot.c_str());
  }
