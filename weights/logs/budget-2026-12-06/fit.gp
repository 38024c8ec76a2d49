# fit.gp - test loss against training tokens for the complete-schedule runs
# of the shipped recipe (points.txt from points.sh), fitted with
# L(D) = a + b * D^-c (D in millions of tokens), and the tokens at which the
# fit reaches the issue's goal: word perplexity 100, i.e. 3.5159 nats/token
# (ln 100 * 245,569 words / 321,649 tokens of test.txt). Fitted to all runs
# and to the runs of at least 5M tokens; to the better of parameters and
# average (column 7, what a run ships) and to the parameters alone (column
# 5: the average pays only in long runs, so the raw curve is the recipe
# without that mixing). A pure power law (a = 0) is fitted too, to show that
# the floor matters. Prints each fit with its RMS residual (the points and
# the all-run fit's values at them too); writes budget.png.
#   gnuplot fit.gp > fit.txt
set print "-"
goal = log(100.0) * 245569.0 / 321649.0
a = 3.0; b = 2.0; c = 0.5
f(x) = a + b * x**(-c)
set fit quiet
set fit errorvariables
p = 3.0; q = 0.05
g(x) = p * x**(-q)
report(what) = sprintf("%s: a + b D^-c: a = %.4f +- %.4f, b = %.4f +- %.4f, c = %.4f +- %.4f, RMS residual %.4f; ", \
    what, a, a_err, b, b_err, c, c_err, FIT_STDFIT * sqrt(FIT_NDF / (FIT_NDF + 3.0))) . \
    (a < goal ? sprintf("goal %.4f at D = %.1fM tokens (%.2fx the shipped 34.5M)", goal, (b / (goal - a))**(1.0 / c), \
                        (b / (goal - a))**(1.0 / c) / 34.542) \
              : sprintf("floor %.4f above the goal %.4f: not reached at any D", a, goal))
# all five runs; then only those of at least 5M tokens (about 2 passes over
# train.txt and more: the regime of repeated data the extrapolation is in)
fit f(x) 'points.txt' using 2:7 via a, b, c
print report("all runs, better of parameters and average")
a1 = a; b1 = b; c1 = c
f1(x) = a1 + b1 * x**(-c1)
print "  the runs (tokens M, test loss), then the fit at the same tokens:"
print system("awk '!/^#/ { printf \"    %6.2f %.4f\\n\", $2, $7 }' points.txt")
do for [x0 in "2.56 5.12 10.24 17.271 34.542"] { print sprintf("    fit at %6.2fM: %.4f", x0 + 0, f(x0 + 0)) }
fit g(x) 'points.txt' using 2:7 via p, q
print sprintf("all runs, better of the two, p D^-q: p = %.4f, q = %.5f, RMS residual %.4f; goal at D = %.1fM tokens (%.2fx)", \
    p, q, FIT_STDFIT * sqrt(FIT_NDF / (FIT_NDF + 2.0)), (p / goal)**(1.0 / q), (p / goal)**(1.0 / q) / 34.542)
fit f(x) 'points.txt' using 2:($2 >= 5 ? $5 : 1/0) via a, b, c
print report(">= 5M tokens, parameters")
fit f(x) 'points.txt' using 2:($2 >= 5 ? $7 : 1/0) via a, b, c
print report(">= 5M tokens, better of parameters and average")
set terminal pngcairo size 1200,480 font ",10"
set output 'budget.png'
set multiplot layout 1,2
set logscale x
set xlabel 'training tokens (millions)'
set ylabel 'validation loss of the parameters (nats/token)'
set key top right
set datafile separator ','
set yrange [3.55:5.0]
set title 'validation loss during each run (complete cosine schedules)'
plot for [r in "s1250 s2500 s5000 s8433"] r.'/train.csv' using ($1*2048/1e6):3 every ::1 with lines title r, \
     '../full-ema-2026-12-05/train.csv' using ($1*2048/1e6):3 every ::1 with lines title 'shipped (s16866)'
set datafile separator whitespace
set title 'end of each run: test loss (better of parameters and average, f32)'
set ylabel 'test loss (nats/token)'
set yrange [3.4:4.5]
set xrange [2:200]
plot 'points.txt' using 2:7 with points pt 7 ps 1.2 title 'runs', \
     f(x) with lines title sprintf('fit to runs >= 5M tokens: %.3f + %.3f D^{-%.3f}', a, b, c), \
     f1(x) with lines dt 2 title sprintf('fit to all runs: %.3f + %.3f D^{-%.3f}', a1, b1, c1), \
     goal with lines lc rgb 'black' dt 3 title 'goal: word perplexity 100'
unset multiplot
