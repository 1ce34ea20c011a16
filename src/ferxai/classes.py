"""Class vocabularies shared by the synthetic generator and the dataset adapters."""

# FER2013's label order: its `emotion` column indexes this list.
FER2013_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# FER+ vote columns in fer2013new.csv order. "contempt" is the extra class FER+ adds;
# "unknown" and "NF" (not a face) are not classes and are dropped by the adapter.
FERPLUS_CLASSES: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
)
FERPLUS_NON_CLASSES: tuple[str, ...] = ("unknown", "NF")

# Label of an image whose class nobody knows (a user's folder explained with their own model).
UNLABELLED = -1
UNLABELLED_NAME = "unlabelled"


def class_name(names, index: int) -> str:
    """Name of class `index`; UNLABELLED_NAME for UNLABELLED (a bare names[-1] would be the last class)."""
    index = int(index)
    if index == UNLABELLED:
        return UNLABELLED_NAME
    if not 0 <= index < len(names):
        raise IndexError(f"class index {index} out of range for {len(names)} classes")
    return str(names[index])
