"""NemoVideo: the wire layer (:mod:`._wire`) and drafts (:mod:`._draft`); the client follows."""
