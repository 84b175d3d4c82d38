"""Bounds on every input, in one place. The README's "Running unattended" section lists them.

Each bound is far above what real series need and far below what would exhaust a 24 GB machine: an input that
passes them is read, checked and forecast in bounded memory and time; one that does not is refused with one
line before anything large is read or allocated.
"""

from __future__ import annotations

# Data (DATA files and standard input)
MAX_INPUT_BYTES = 4 << 30  # bytes of one CSV file or of standard input
MAX_COLUMNS = 10_000  # columns of one CSV file
MAX_ID_CHARS = 1_000  # characters of one series id
MAX_ABS_VALUE = 1e100  # |value| of a target or covariate: beyond it sums of squares would overflow float64
MAX_HEADER_BYTES = MAX_COLUMNS * (4 * MAX_ID_CHARS + 3)  # the header line (about 40 MB)
MAX_PERIOD = 10**18  # |integer period| (and an integer step): differences and steps stay inside int64
MAX_ADDED_ROWS = 10_000_000  # rows that filling gaps may add beyond as many as were read
# Dates: 1677-09-21 to 2262-04-11 (datetime64[ns]), at most 292 years apart within one file

# Windows and forecasts
MAX_HORIZON = 10_000  # steps of --horizon (train, predict, evaluate, plot)
MAX_LOOKBACK = 10_000  # steps of --lookback
MAX_HISTORY = 100_000  # plot --history: steps of history drawn before the forecast
MAX_FORECAST_CELLS = 50_000_000  # series x horizon of one forecast
MAX_FOLDS = 1_000  # evaluate --folds
MAX_STEP = 100_000  # evaluate --step
MAX_UPDATES_KEPT = 1_000  # `forecast update` records a model directory's manifest keeps (the oldest dropped)
MAX_CALIBRATION_WINDOWS = 20_000  # validation windows whose errors a model keeps to calibrate its intervals
MAX_CALIBRATION_ERRORS = 1_000_000  # windows whose errors are measured to calibrate the intervals (the validation
# windows, or every window of a model that fits nothing): beyond it, evenly spaced over each series, at least 2 each
MAX_STATIC_CATEGORIES = 1_000  # distinct values of one text --static column (each is a one-hot input)

# Training options
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 65_536
MAX_HIDDEN = 4_096
MAX_LAYERS = 16
MAX_UNITS = 10_000  # ESN reservoir: units^2 float32 weights, 400 MB at the bound
MAX_ENSEMBLE = 32
MAX_SERIES_WINDOWS = 1_000_000  # --series-windows (0: every window)
MAX_PATIENCE = MAX_EPOCHS  # --patience (0 turns early stopping off)
MAX_DROPOUT = 0.9  # --dropout, from 0
MIN_LEARNING_RATE = 1e-8  # --learning-rate: above 0 (a negative one climbs the loss)...
MAX_LEARNING_RATE = 1.0  # ...and at most 1 (AdamW's steps are about this size in scaled units)
MAX_SEED = 2**32 - 1  # --seed, from 0
MAX_DEVICES = 1_024  # --devices
MAX_PROCESSES = 1_024  # --num-processes; --process-id is below it

# The model directory
MAX_MANIFEST_BYTES = 64 << 20  # manifest.json (a million series ids fit in about 20 MB)
MAX_MANIFEST_DEPTH = 32  # nesting of JSON objects and lists in manifest.json
MAX_ARRAYS_BYTES = 8 << 30  # arrays.npz, and the sum of its members' sizes
