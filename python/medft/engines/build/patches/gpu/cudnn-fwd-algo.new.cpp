    fwd_algo_[i] = medft_fwd_algo(handle_[0], bottom_descs_[i], filter_desc_, conv_descs_[i],
        top_descs_[i], workspace_limit_bytes);