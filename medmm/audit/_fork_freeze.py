"""Imported LAST by the audit pool's forkserver (``medmm.audit.runner._PRELOAD``), never by a program: moves
every object the server holds after its preloads (medmm, pydicom, the checker's warm caches) into the garbage
collector's permanent generation (:func:`gc.freeze`, made for this). A forked worker's first collections then
no longer walk, and so write to, every inherited object — which copied each inherited memory page into the
worker (copy-on-write): about 9,000 page faults and 0.1-0.2 s of CPU per worker before its first study was
done, measured on the 2-core machine."""

import gc

gc.freeze()
