# gnuplot weights/logs/muon-lr-2026-12-08/curves.gp (from the repository
# root): validation loss of the raw parameters (nats per token, first 65,536
# tokens of valid.txt) against steps for the four 2,500-step Muon pilot
# runs, drawn to weights/logs/muon-lr-2026-12-08/curves.png.
a = 'weights/logs/muon-pilot-2026-12-08/'
b = 'weights/logs/muon-lr-2026-12-08/'
set terminal pngcairo size 800,500 font ',10'
set output b.'curves.png'
set datafile separator ','
set grid
set key top right
set title 'complete 2,500-step cosines: AdamW against Muon'
set xlabel 'step'
set ylabel 'valid loss, raw parameters (nats per token)'
set yrange [3.8:5.2]
plot a.'adamw/train.csv' every ::1 using 1:3 with linespoints lw 2 lc 1 pt 7 title 'AdamW, lr 0.0025', \
     a.'muon/train.csv' every ::1 using 1:3 with linespoints lw 2 lc 2 pt 7 title 'Muon, lr 0.0025', \
     b.'adamw/train.csv' every ::1 using 1:3 with linespoints lw 1 dt 2 lc 1 pt 6 title 'AdamW, lr 0.005 (stopped at 892)', \
     b.'muon/train.csv' every ::1 using 1:3 with linespoints lw 1 dt 2 lc 2 pt 6 title 'Muon, lr 0.005 (stopped at 734)'
