"""``python -m services.orders.app worker`` runs the orders service worker."""
from .main import rt

rt.main()
