    reader_.free().push(const_cast<Datum*>(&datum));
    ++consumed_;
