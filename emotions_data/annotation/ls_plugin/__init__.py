"""Code loaded into the embedded Label Studio process (its own venv), never imported by the package.

``server.start_server`` puts this folder on the server's ``PYTHONPATH`` and names
``emotions_data_ls_settings`` as its Django settings module; the modules here import only Django,
Django REST framework and Label Studio.
"""
