  virtual inline int MaxTopBlobs() const { return 2; }

 protected:
