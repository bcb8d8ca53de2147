  DataReader<Datum> reader_;
  long consumed_;  // medft: records read from reader_ so far
};