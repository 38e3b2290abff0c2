"""Errors the add-on reports to the artist as one clear sentence."""


class ChoreoUserError(Exception):
    """Bad input from the scene (wrong object, unusable rig, missing data): the
    message is shown to the user as is and nothing in the file was changed."""
