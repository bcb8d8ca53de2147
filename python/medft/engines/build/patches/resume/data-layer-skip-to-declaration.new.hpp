  virtual inline int MaxTopBlobs() const { return 2; }
  // medft: go on from record (target mod N) of the source (exact resume)
  void SkipTo(long target);

 protected:
