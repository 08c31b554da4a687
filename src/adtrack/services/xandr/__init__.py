"""Moving over from the original platform (Microsoft Invest / Xandr / AppNexus API): its
catalogue, its exported tags and its report history.

The ``objects`` package is the one mapping between the platform's API JSON objects and adtrack's
catalogue, used by the catalogue import and by the compatible API (``/xandr/``).
"""
