"""Moving over from Microsoft Invest / Xandr: its catalogue, tags and report history."""
