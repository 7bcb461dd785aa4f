from .main import rt

rt.main()
