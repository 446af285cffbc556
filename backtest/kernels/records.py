"""Layouts and codes shared by the kernels and their Python wrappers.

The kernels keep one combination's running state in a flat float64 vector (``S_*`` slots),
read its parameters from another (``P_*`` slots) and write trades and events as rows of
float64 matrices (``T_*`` / ``E_*`` columns). Enum values are plain ints so that Numba never
sees a Python object. Names for the codes live here too, for the wrappers.

Imports nothing but the standard library.
"""

# --- parameter vector (one row per combination) -------------------------------------------
P_LEVERAGE = 0
P_SIZE = 1
P_SIZE_TYPE = 2
P_STOP_LOSS = 3          # fraction; NaN = none
P_TAKE_PROFIT = 4        # fraction; NaN = none
P_TRAILING = 5           # fraction; NaN = none
P_STOP_TRIGGER = 6       # TRIGGER_*
P_STOP_ORDER = 7         # ORDER_MARKET / ORDER_LIMIT
P_STOP_LIMIT_OFFSET = 8
P_ENTRY_ORDER = 9        # ORDER_MARKET / ORDER_LIMIT
P_LIMIT_OFFSET = 10
P_LIMIT_TTL = 11         # bars
P_FILL = 12              # FILL_*
P_PATH = 13              # PATH_*
P_LIQUIDATION = 14       # LIQ_*
P_LIQUIDATION_FEE = 15
P_TAKER_FEE = 16
P_MAKER_FEE = 17
P_SLIPPAGE = 18
P_MARGIN_MODE = 19       # MODE_*
P_NEGATIVE_EQUITY = 20   # 0/1
P_INITIAL_CAPITAL = 21
P_SIGNAL_SET = 22        # column of the signal matrices
N_PARAMS = 23

SIZE_MARGIN, SIZE_NOTIONAL, SIZE_RISK, SIZE_QTY = 0, 1, 2, 3
SIZE_TYPES = ("margin", "notional", "risk", "qty")
TRIGGER_LAST, TRIGGER_MARK = 0, 1
TRIGGERS = ("last", "mark")
ORDER_MARKET, ORDER_LIMIT = 0, 1
ORDERS = ("market", "limit")
FILL_NEXT_OPEN, FILL_CLOSE = 0, 1
FILLS = ("next_open", "close")
PATH_PESSIMISTIC, PATH_OHLC = 0, 1
PATHS = ("pessimistic", "ohlc")
LIQ_BANKRUPTCY, LIQ_PRICE = 0, 1
LIQUIDATIONS = ("bankruptcy", "liquidation_price")
MODE_ISOLATED, MODE_CROSS = 0, 1
MARGIN_MODES = ("isolated", "cross")

# --- instrument vector ----------------------------------------------------------------------
I_SETTLEMENT = 0
I_RULES = 1
I_CONTRACT_SIZE = 2
I_TICK = 3
I_LOT = 4
I_KIND = 5               # KIND_*
I_EXPIRY_BAR = 6         # future: last bar ending at or before expiry; -1 = none in the data
I_SETTLE_PRICE = 7       # future: settlement price at expiry
I_MARGIN_LEVEL = 8       # spot margin: liquidation margin level (assets / liabilities)
N_INSTRUMENT = 9

KIND_PERPETUAL, KIND_FUTURE, KIND_SPOT_MARGIN = 0, 1, 2

# --- market matrix columns (float64, bar-major: shape (n_bars, N_MARKET)) ---------------
M_OPEN, M_HIGH, M_LOW, M_CLOSE = 0, 1, 2, 3
M_MARK_OPEN, M_MARK_HIGH, M_MARK_LOW, M_MARK_CLOSE = 4, 5, 6, 7
M_FUNDING_RATE, M_FUNDING_COUNT, M_NEXT_FUNDING_RATE = 8, 9, 10
M_BORROW_RATE = 11       # spot margin: hourly interest rate in force during the bar
M_HOURS_IN_BAR = 12      # clock hours starting in [bar open, next bar open)
M_HOURS_AFTER_OPEN = 13  # clock hours starting in (bar open, next bar open)
N_MARKET = 14
# The per-bar vector the step reads: the N_MARKET values of bar t, then the previous close.
M_PREV_CLOSE = 14
N_BAR = 15

# --- signal bitmask (uint8 per bar and signal set) ---------------------------------------
SIG_ENTRY, SIG_EXIT, SIG_SHORT_ENTRY, SIG_SHORT_EXIT = 1, 2, 4, 8

# --- exit reasons ---------------------------------------------------------------------------
R_SIGNAL, R_REVERSE, R_STOP_LOSS, R_TAKE_PROFIT, R_TRAILING, R_LIQUIDATION, R_EXPIRY, R_END = (
    0, 1, 2, 3, 4, 5, 6, 7)
REASONS = ("signal", "reverse", "stop_loss", "take_profit", "trailing_stop", "liquidation",
           "expiry", "end")

# --- events ---------------------------------------------------------------------------------
EV_SIZE_ZERO = 0
EV_INSUFFICIENT_MARGIN = 1
EV_LEVERAGE_ABOVE_TIER = 2
EV_ENTRY_IGNORED = 3
EV_CONFLICTING_ENTRIES = 4
EV_LIMIT_EXPIRED = 5
EV_SIGNAL_DROPPED_LAST_BAR = 6
EV_SIGNAL_AFTER_RUIN = 7
EV_AMBIGUOUS_BAR = 8
EV_STOP_LIMIT_RESTING = 9
EV_SIGNAL_AFTER_EXPIRY = 10
N_EVENT_KINDS = 11
EVENT_KINDS = ("size_zero", "insufficient_margin", "leverage_above_tier", "entry_ignored",
               "conflicting_entries", "limit_expired", "signal_dropped_last_bar",
               "signal_after_ruin", "ambiguous_bar", "stop_limit_resting",
               "signal_after_expiry")

# --- trade rows -----------------------------------------------------------------------------
T_ENTRY_BAR, T_EXIT_BAR, T_SIDE, T_SIZE, T_LEVERAGE = 0, 1, 2, 3, 4
T_ENTRY_PRICE, T_EXIT_PRICE, T_MARGIN, T_GROSS_PNL, T_FEES = 5, 6, 7, 8, 9
T_FUNDING, T_PNL, T_REASON, T_INTEREST = 10, 11, 12, 13
N_TRADE_COLS = 14

# --- event rows: bar, kind, value ---------------------------------------------------------
E_BAR, E_KIND, E_VALUE = 0, 1, 2
N_EVENT_COLS = 3

# --- state vector ---------------------------------------------------------------------------
S_WALLET = 0
S_SIDE = 1             # 0 flat, +1 long, -1 short
S_SIZE = 2
S_ENTRY = 3
S_MARGIN = 4           # isolated: W (posted margin -/+ funding); cross: initial margin in use
S_MARGIN0 = 5          # margin posted at entry
S_ENTRY_FEE = 6
S_TRADE_FUNDING = 7
S_STOP = 8             # stop-loss level, NaN = none
S_TAKE_PROFIT = 9      # NaN = none
S_TRAIL_REF = 10       # best trigger-series price since entry
S_LIQ = 11
S_BANKRUPT = 12
S_ENTRY_BAR = 13
S_STOP_LIMIT = 14      # resting stop-limit price, NaN = none
S_STOP_LIMIT_REASON = 15
S_PENDING_SIDE = 16    # resting entry limit: side, 0 = none
S_PENDING_PRICE = 17
S_PENDING_EXPIRY = 18  # last bar on which it may fill
S_RUINED = 19
S_EQUITY = 20          # equity at the close of the last bar stepped
S_FUNDING_BAR = 21     # funding paid in the last bar stepped
# streaming stats (kernels/stats.py)
S_PREV_EQUITY = 22
S_PEAK = 23
S_MAX_DRAWDOWN = 24
S_N_RETURNS = 25
S_RET_MEAN = 26
S_RET_M2 = 27
S_RET_DOWN_SQ = 28
S_N_TRADES = 29
S_N_WINS = 30
S_SUM_WIN = 31
S_SUM_LOSS = 32
S_N_LIQUIDATIONS = 33
S_N_STOPS = 34
S_FUNDING_PAID = 35
S_FEES_PAID = 36
S_EXPOSED_BARS = 37
S_MIN_LIQ_DISTANCE = 38
S_N_TRADE_ROWS = 39    # rows written to the trade matrix
S_N_EVENT_ROWS = 40    # rows written to the event matrix
S_BORROWED = 41        # spot margin long: quote borrowed at entry
S_TRADE_INTEREST = 42  # spot margin: interest charged on the open position (account ccy)
S_INTEREST_PAID = 43
S_LOCKED = 44          # portfolio: wallet locked as margin by the other markets' positions
S_SHARED_CROSS = 45    # portfolio cross margin: 1 = the portfolio kernel tests liquidation
S_EVENT_COUNT0 = 46    # + EV_* : count of each event kind
N_STATE = S_EVENT_COUNT0 + N_EVENT_KINDS
