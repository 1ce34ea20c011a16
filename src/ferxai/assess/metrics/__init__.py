"""One file per explanation metric; `ferxai.assess.catalog` lists them and says what each takes.

Calling conventions, by what the catalog entry `needs`:
  ()            fn(maps, **params)                                         complexity
  ("masks",)    fn(maps, masks, **params)                                  localisation
  ("model",)    fn(model, images, maps, targets, batch_size=..., offset=..., **params)  faithfulness
  ("explainer",) fn(explain, images, maps, targets, per_call=..., offset=..., **params)  sensitivity
Every one returns one float per image (N,), NaN where the image has no answer. `offset` is the
position of the first image in the selection: per-image random draws are seeded by it, so a
score does not depend on how the images are sharded or batched.
"""
