"""The composition root: builds each process's services for its role (see ``services``)."""
