"""brats-ssl: semi-supervised brain-tumour segmentation from multi-parametric MRI."""

__version__ = "0.1.0"
