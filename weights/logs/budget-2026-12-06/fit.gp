# fit.gp - test loss against training tokens for the complete-schedule runs
# of the shipped recipe (points.txt from points.sh), fitted with
# L(D) = a + b * D^-c (D in millions of tokens), and the tokens at which the
# fit reaches the issue's goal: word perplexity 100, i.e. 3.5159 nats/token
# (ln 100 * 245,569 words / 321,649 tokens of test.txt). Also a pure power
# law (a = 0) as a second reading. Writes budget.png; prints the fits.
#   gnuplot fit.gp
goal = log(100.0) * 245569.0 / 321649.0
a = 3.0; b = 2.0; c = 0.5
f(x) = a + b * x**(-c)
set fit quiet
set fit errorvariables
fit f(x) 'points.txt' using 2:7 via a, b, c
p = 3.0; q = 0.05
g(x) = p * x**(-q)
fit g(x) 'points.txt' using 2:7 via p, q
print sprintf("a + b D^-c: a = %.4f +- %.4f, b = %.4f +- %.4f, c = %.4f +- %.4f", a, a_err, b, b_err, c, c_err)
if (a < goal) { print sprintf("  goal %.4f reached at D = %.1fM tokens (%.2fx the shipped 34.5M)", goal, (b / (goal - a))**(1.0 / c), (b / (goal - a))**(1.0 / c) / 34.542) } else { print sprintf("  floor a = %.4f is above the goal %.4f: never reached at this shape", a, goal) }
print sprintf("p D^-q: p = %.4f, q = %.5f; goal at D = %.1fM tokens (%.2fx)", p, q, (p / goal)**(1.0 / q), (p / goal)**(1.0 / q) / 34.542)
set terminal pngcairo size 1200,480 font ",10"
set output 'budget.png'
set multiplot layout 1,2
set logscale x
set xlabel 'training tokens (millions)'
set ylabel 'validation loss of the average (nats/token)'
set key top right
set datafile separator ','
set yrange [3.5:4.6]
set title 'validation loss during each run (complete cosine schedules)'
plot for [r in "s1250 s2500 s5000 s8433"] r.'/train.csv' using ($1*2048/1e6):7 every ::1 with lines title r, \
     '../full-ema-2026-12-05/train.csv' using ($1*2048/1e6):7 every ::1 with lines title 'shipped (s16866)'
set datafile separator whitespace
set title 'end of each run: test loss (better of parameters and average, f32)'
set ylabel 'test loss (nats/token)'
set yrange [3.4:4.2]
set xrange [1:200]
plot 'points.txt' using 2:7 with points pt 7 ps 1.2 title 'runs', \
     f(x) with lines title sprintf('%.3f + %.3f D^{-%.3f}', a, b, c), \
     g(x) with lines dt 2 title sprintf('%.3f D^{-%.4f}', p, q), \
     goal with lines lc rgb 'black' dt 3 title 'goal: word perplexity 100'
unset multiplot
