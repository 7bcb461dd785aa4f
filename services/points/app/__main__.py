from .main import app

app.main()
