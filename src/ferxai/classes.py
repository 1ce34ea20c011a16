"""Class vocabularies shared by the synthetic generator and the dataset adapters."""

# FER2013's label order: its `emotion` column indexes this list.
FER2013_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# FER+ vote columns in fer2013new.csv order. "contempt" is the extra class FER+ adds;
# "unknown" and "NF" (not a face) are not classes and are dropped by the adapter.
FERPLUS_CLASSES: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
)
FERPLUS_NON_CLASSES: tuple[str, ...] = ("unknown", "NF")
