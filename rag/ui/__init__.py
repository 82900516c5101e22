"""The app's pages (app.py draws them): common.py, sidebar.py, chat.py, library.py."""
