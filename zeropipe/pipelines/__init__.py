"""zeropipe.pipelines."""
