"""The named choices of the library, declared once: the modules that implement them and the CLI's
options both read them here (a light module, so parsing arguments loads no numpy)."""

#: How 1:N finds candidate templates: every one (exact), an HNSW index, or exact up to a size (auto).
SEARCH_MODES = ("auto", "exact", "index")
#: How a person with several templates is matched: their mean template, or the nearest one.
TEMPLATE_MODES = ("mean", "best")
#: How `cluster` joins groups of faces: by their mean distance, or by their closest pair.
LINKAGES = ("average", "single")
#: The projection heads `facecli tune` learns: one matrix, or two with a ReLU between them.
HEADS = ("linear", "two-layer")
#: Its losses: FaceNet's triplet loss, or the contrastive loss on pairs.
LOSSES = ("triplet", "contrastive")
#: Which negatives of a mini-batch train it: FaceNet's semi-hard ones, the hardest, or every one.
MININGS = ("semi-hard", "hard", "all")
