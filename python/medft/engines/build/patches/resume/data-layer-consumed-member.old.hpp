  DataReader<Datum> reader_;
};