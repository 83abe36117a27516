#import <Foundation/Foundation.h>
NSString *Greet(void);
