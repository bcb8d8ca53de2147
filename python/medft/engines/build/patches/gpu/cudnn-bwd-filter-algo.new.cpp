    bwd_filter_algo_[i] = medft_bwd_filter_algo(handle_[0], bottom_descs_[i], top_descs_[i],
        conv_descs_[i], filter_desc_, workspace_limit_bytes);