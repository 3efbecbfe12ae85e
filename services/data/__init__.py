"""Datasets for training: where they come from and what is in them.

`sources` (Hub ids, uploaded files and the bundled samples, loaded, checked and split), `report` (what a dataset
holds: columns, labels, lengths in tokens, problems). Exports `DatasetError`.
"""

from services.data.sources import DatasetError

__all__ = ["DatasetError"]
