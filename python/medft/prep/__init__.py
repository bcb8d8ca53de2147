"""``medft prep``: images and annotations in, Caffe Datum LMDBs out (paper section VI).

One module per application (:mod:`.polyp`, :mod:`.pe`, :mod:`.frames`, :mod:`.cimt`) turns a
documented input folder (``data_prep/README.md``) into *patch specs*: where each patch comes
from and how it is augmented, without pixels.  :mod:`.build` splits by case, reduces,
stratifies and caps the specs, then renders only the chosen ones into LMDBs
(:mod:`medft.datum_lmdb`) with manifests (:mod:`.manifest`), means (:mod:`.mean`) and a
``prep.json`` record; :mod:`.dataset` reads such a data set back for training.  :mod:`.synthetic`
writes a small seeded input set for every app.
"""
