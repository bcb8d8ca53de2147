    bwd_data_algo_[i] = medft_bwd_data_algo(handle_[0], filter_desc_, top_descs_[i],
        conv_descs_[i], bottom_descs_[i], workspace_limit_bytes);