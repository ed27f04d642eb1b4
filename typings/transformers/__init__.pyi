# pyright reads this instead of the `transformers` package: binding the package's __init__,
# which names hundreds of model modules, took about 20 s of every lint (half of it), for the
# few names models/text.py and models/clip.py use. Calls on them are not type-checked.
from typing import Any

def __getattr__(name: str) -> Any: ...
