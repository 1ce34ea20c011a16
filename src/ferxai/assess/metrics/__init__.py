"""One file per explanation metric; `ferxai.assess.catalog` lists them and says what each takes.

Calling conventions, by what the catalog entry `needs`:
  ()            fn(maps, **params)                                         complexity
  ("masks",)    fn(maps, masks, **params)                                  localisation
  ("model",)    fn(model, images, maps, targets, batch_size=..., **params)  faithfulness
  ("explainer",) fn(explain, images, maps, targets, per_call=..., **params)  sensitivity
Every one returns one float per image (N,), NaN where the image has no answer.
"""
