"""Reading BraTS-like datasets into one internal form, preprocessing, splits, sampling."""
