__version__ = "0.1.0"

import warnings as _warnings
# importing fastai scripts one of its layers with `torch.jit.script`, which torch now flags as deprecated: a warning about
# fastai's code that no genomorph user can act on, shown on every import; anything else torch or fastai warns about still shows
_warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated', category=FutureWarning)
