"""Architecture families; importing this package registers them all."""
from fer_edge.training.models import applications, edge, mini_xception, sequential, vgg  # noqa: F401
