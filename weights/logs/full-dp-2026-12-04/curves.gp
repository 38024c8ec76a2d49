# gnuplot weights/logs/full-dp-2026-12-04/curves.gp (from the repository
# root): validation loss (nats/token, first 65,536 tokens of valid.txt)
# against training tokens for the three full-data random-synthesizer runs,
# and the fit a + b t^-c of the shipped run (t in millions of tokens,
# t >= 2M) that predicted where a longer run lands.
set terminal pngcairo size 1100,480 font ',10'
set output 'weights/logs/full-dp-2026-12-04/curves.png'
set datafile separator ','
set multiplot layout 1,2
set xlabel 'training tokens (millions)'
set ylabel 'valid loss'
set grid
set key top right
a = 2.02; b = 3.01; c = 0.197
set title 'validation loss, whole runs'
set yrange [3.4:5.0]
plot 'weights/logs/synthesizer-wt2-train.csv' every ::1 using ($1*2048/1e6):3 with linespoints pt 7 ps 0.3 title 'shipped: dropout 0.1, 1 thread, 95 min', \
     'weights/logs/full-2026-12-04/train.csv' every ::1 using ($1*2048/1e6):3 with linespoints pt 7 ps 0.3 title 'dropout 0.2, 2 threads (one net), 90 min', \
     'weights/logs/full-dp-2026-12-04/train.csv' every ::1 using ($1*2048/1e6):3 with linespoints pt 7 ps 0.3 title 'dropout 0.1, 2 shards on 2 threads, 100 min', \
     [2:40] a + b * x**(-c) with lines dt 2 lw 1.5 title 'fit to the shipped run'
set title 'the last 20M tokens'
set yrange [3.45:3.85]
set xrange [12:36]
replot
unset multiplot
