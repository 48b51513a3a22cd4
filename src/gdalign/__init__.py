"""gdalign: a reproducible companion to Ji & Telgarsky (ICLR 2019),
"Gradient descent aligns the layers of deep linear networks".

Modules, each named for what it holds:

* :mod:`gdalign.data`      -- data sets (toy, Gaussian, scikit-learn, files), z_i = y_i x_i
* :mod:`gdalign.losses`    -- losses, stable values and derivatives, log-domain risk
* :mod:`gdalign.network`   -- batched deep linear networks, initialisations, closed-form gradients
* :mod:`gdalign.margin`    -- the exact max-margin direction, support set, Assumption 3, alpha
* :mod:`gdalign.dynamics`  -- gradient descent and gradient flow, recorded into tidy tables
* :mod:`gdalign.metrics`   -- alignment, invariants and margin quantities of a network
* :mod:`gdalign.claims`    -- verdict records for the paper's claims, results.json
* :mod:`gdalign.params`    -- validation of notebook parameters
* :mod:`gdalign.plots`     -- shared figures: seed bands, 2-D data with directions
* :mod:`gdalign.alexnet`   -- the nonlinear (AlexNet-style) experiment of the paper's last figure
* :mod:`gdalign.execute`   -- the papermill runner with its content-hash cache
* :mod:`gdalign.book`      -- the generated pages and the site build; :mod:`gdalign.cli` the ``gdalign`` command
"""
__version__ = "0.1.0"
