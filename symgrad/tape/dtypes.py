"""The tape's dtypes, printed as torch prints them (``torch.float32``)."""

import numpy as np

float32 = np.dtype("float32")
float64 = np.dtype("float64")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")
DEFAULT_DTYPE = float64  # Python floats become float64 (torch.set_default_dtype(torch.float64))

